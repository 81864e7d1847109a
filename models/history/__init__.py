"""A scan compared with the same vehicle's earlier passes (issue 19): registration, change regions, evaluation.

    from models.history.compare import compare, prepare
    result = compare(current_scan, prepare(reference_scan))
"""
