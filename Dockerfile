# syntax=docker/dockerfile:1
# One image for every labweave process of a deployment (server, tenants, optimizer) and for
# the Dask scheduler and workers, so the workers run the same code as the tenants that use them.
# See compose.yaml; build with `docker compose build` (or `docker build -t labweave .`).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: a virtual environment with labweave and its dependencies -------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/labweave/bin:$PATH
RUN python -m venv /opt/labweave
# torch first, the CPU build from PyTorch's own index: PyPI's Linux wheel of torch depends on the
# CUDA libraries (several GB the lab's small dense models never use); the CPU build is a fraction
# of that. Installed first and pinned by the constraint below, nothing later can replace it.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && echo "torch==2.13.0" > /opt/constraints.txt
WORKDIR /src
COPY pyproject.toml README.md ./
COPY labweave ./labweave
COPY schemas ./schemas
COPY services ./services
COPY drivers ./drivers
COPY optimizer ./optimizer
# a wheel, not an editable install: the runtime stage needs nothing of /src
RUN pip install --constraint /opt/constraints.txt . \
 && find /opt/labweave -name '__pycache__' -prune -exec rm -rf {} + \
 && python -m compileall -q /opt/labweave/lib

# ---- runtime: the environment alone, run by an unprivileged user -----------------------------
FROM ${PYTHON_IMAGE} AS runtime
# /var/lib/labweave/lab: a tenant's state and outbox; a named volume mounted there starts as a copy
# of this directory, so it belongs to labweave too
RUN groupadd --system --gid 10001 labweave \
 && useradd --system --uid 10001 --gid labweave --home-dir /var/lib/labweave --create-home \
            --shell /usr/sbin/nologin labweave \
 && install -d -o labweave -g labweave -m 0700 /var/lib/labweave/lab
COPY --from=build /opt/labweave /opt/labweave
ENV PATH=/opt/labweave/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYBAMM_DISABLE_TELEMETRY=true
USER labweave:labweave
WORKDIR /var/lib/labweave
EXPOSE 8000
# the server; compose.yaml gives every other service its own command (labweave ... or dask ...)
CMD ["labweave", "serve", "--host", "0.0.0.0", "--port", "8000"]
