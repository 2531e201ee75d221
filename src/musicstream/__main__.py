from musicstream import main

main()
