"""Secure deployment across organisations: TLS and SuperNode-authentication credentials (docs/deployment.md)."""
