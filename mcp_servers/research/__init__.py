"""The research MCP server: web search and extraction (Tavily), a local corpus, and multi-step research."""
