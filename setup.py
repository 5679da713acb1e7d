"""Maps the root folders onto the ``labweave`` import namespace (see DESIGN.md)."""

from setuptools import find_namespace_packages, setup

PARTS = ("schemas", "services", "drivers", "optimizer")

packages, package_dir = [], {}
for part in PARTS:
    packages.append(f"labweave.{part}")
    # namespace packages too: the folders holding only data (templates, migrations, campaigns) are packages
    packages += [f"labweave.{part}.{sub}" for sub in find_namespace_packages(part, exclude=["*__pycache__*"])]
    package_dir[f"labweave.{part}"] = part

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={
        "labweave.optimizer": ["*.json", "campaigns/*.toml"],
        "labweave.services": [
            "server/dashboard/templates/*.html",
            "server/dashboard/static/*",
            "server/db/migrations/*.ini",
            "server/db/migrations/*.mako",
            "server/db/migrations/versions/*.py",
        ],
    },
)
