"""Serving a Backend over Convex's wire protocol, and the client for such a server.

    handle = app.serve(port=3210, block=False)      # HTTP API + WebSocket sync protocol
    remote = cn.connect(handle.url)                  # the same API as a Backend, over the network
"""

from .deployment import ServerSettings
from .serve import ServerHandle, serve

__all__ = ["DeploymentClient", "ServerHandle", "ServerSettings", "serve"]


def __getattr__(name: str):  # the client pulls in the websockets client only when used
    if name == "DeploymentClient":
        from .client import DeploymentClient

        return DeploymentClient
    raise AttributeError(name)
