"""labweave's wire contract: pydantic models only, importing nothing else of ours."""
