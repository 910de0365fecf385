"""HTTP routers, one module per room; ``api.app`` includes them."""
