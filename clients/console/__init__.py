"""The browser console served at `/` by `alphaavatar up`: see, correct and erase what the avatar
knows. It is an MCP client of the servers (like the agent); its pages are built from `web/`
into `static/` (`make console-assets`), so serving it needs no Node."""
