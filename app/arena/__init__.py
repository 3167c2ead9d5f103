"""2-D function races: the function map, optimizer internals, the problem panel."""
