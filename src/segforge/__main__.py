"""``python -m segforge`` runs the CLI."""

from segforge.cli.app import main

if __name__ == "__main__":
    main()
