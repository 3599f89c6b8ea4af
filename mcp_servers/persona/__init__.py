"""The persona MCP server: who is speaking (voice and face), and a profile with provenance per user."""
