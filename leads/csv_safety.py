"""CSV cells that spreadsheets will not run as formulas."""

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe_cell(value):
    """Prefix a text cell that a spreadsheet would read as a formula (starting
    with = + - @ tab or CR) with a single quote. Numbers stay numbers (a
    negative amount is not a formula); None becomes an empty cell."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def csv_safe(row):
    return [csv_safe_cell(value) for value in row]
