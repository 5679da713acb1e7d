"""labweave's services: the intention server, its client, tenant and optimizer daemons, the CLI."""
