"""Data sets for network problems: seeded, generated with numpy or shipped inside a package.

Nothing is downloaded at run time. The 2-D toy sets and the regression sets are drawn with a
``numpy.random.Generator`` made from the data seed; the 8×8 handwritten digits come from
scikit-learn, which ships them inside its wheel (``sklearn.datasets.load_digits`` reads a local
file); a CSV file is read from disk next to the lab file.

One module per idea: what a ``problem.dataset`` entry may hold, the registry of sets and the
check of a spec (`spec`), the generators of the built-in sets (`generators`), reading a CSV file
(`csv_file`), the inputs built from a point and their standardization (`features`), the `Dataset`
type (`dataset`), and building a data set from a spec: draw, shuffle, split, round, standardize
(`build`).
"""
