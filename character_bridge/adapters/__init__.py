"""Adapters: drive external renderers (AIRI, VTube Studio) from the hub's event stream."""

from .airi import AiriAdapter
from .base import Adapter, Backoff
from .vtube_studio import VTSMapping, VTubeStudioAdapter

__all__ = ["Adapter", "AiriAdapter", "Backoff", "VTSMapping", "VTubeStudioAdapter"]
