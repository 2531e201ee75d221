from musicstream.cli import main

main()
