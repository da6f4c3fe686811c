from runbooks.sandbox.edge.server import main

if __name__ == "__main__":
    main()
