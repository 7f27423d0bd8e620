"""codex-mcp-server: an async Python SDK for OpenAI's Codex agent, and an MCP server on it."""

__version__ = "0.1.0"
