"""The Cloudflare API emulator alone (no DNS, no HTTPS), for debugging:
``python -m runbooks.sandbox.emulators.cloudflare --root R --port P [--faults a,b]``.

The twin runs it inside the edge process (``python -m runbooks.sandbox.edge``) instead, so that DNS and
HTTPS share its state. The bootstrap token is ``<root>/secrets/cloudflare_api_token`` (created if absent).
"""

import secrets

from runbooks.sandbox.edge.world import EdgeWorld, inventory_hostnames
from runbooks.sandbox.emulators.cloudflare.app import create_app
from runbooks.sandbox.emulators.common import parse_args, serve, write_secret

if __name__ == "__main__":
    args = parse_args("edge")
    world = EdgeWorld(args.state_dir / "state.json")
    if not world.built:
        token_file = args.root / "secrets" / "cloudflare_api_token"
        if not token_file.is_file():
            write_secret(args.root, "cloudflare_api_token", secrets.token_urlsafe(32))
        zone, cookie_domain, hostnames = inventory_hostnames()
        world.build(zone, hostnames, args.faults, token_file.read_text().strip(), cookie_domain=cookie_domain)
    serve(create_app(world), args)
