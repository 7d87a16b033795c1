from custsite.cli import main

main()
