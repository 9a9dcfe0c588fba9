"""What a person reads of a fit: `ladder fit`'s report (report.py) and its figures (figures.py), and `ladder compare`'s
report (compare_report.py). They read the methods' outputs and never feed them."""
