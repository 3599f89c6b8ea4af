"""The memory server: long-term memory on the core store, with mem0's extraction prompts and mem0's Memory."""

import os

# The one place that turns mem0's telemetry off: mem0 reads it once, when first imported, and
# every import of mem0 in our code goes through this package.
os.environ.setdefault("MEM0_TELEMETRY", "False")
