from tia2v.cli import entry

entry()
