from runbooks.sandbox.emulators.alerts.app import create_app
from runbooks.sandbox.emulators.common import parse_args, serve

if __name__ == "__main__":
    args = parse_args("alerts")
    serve(create_app(args), args)
