from opsis.cli import main

main()
