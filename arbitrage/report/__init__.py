"""Reports for finance and engineering: price comparison, plan with savings, rent-vs-buy break-even.

Pure builders (`prices`, `plan`, `breakeven`) turn offers, plans and assumptions into report data;
renderers (`markdown`, `tables`, `terminal`, `html`) format that data; `output` and `ownership` are the
only modules here that touch the disk. Nothing is imported at package level so the CLI stays fast.
"""
