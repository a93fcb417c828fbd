"""A tiny MCP server on the official Python SDK (a test fixture)."""

from mcp.server.mcpserver import MCPServer

mcp = MCPServer("tiny")


@mcp.tool()
def add(a: int, b: int) -> int:
    """Adds two numbers."""
    return a + b


@mcp.tool()
def shout(text: str) -> str:
    """Upper-cases a text."""
    return text.upper()


mcp.run()
