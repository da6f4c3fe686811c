from runbooks.sandbox.emulators.common import parse_args, serve
from runbooks.sandbox.emulators.render.app import create_app

if __name__ == "__main__":
    args = parse_args("render")
    serve(create_app(args), args)
