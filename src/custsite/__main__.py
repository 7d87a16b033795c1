from custsite.cli import run

run()
