from darkembed.cli import run

run()
