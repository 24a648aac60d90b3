"""What a build did, for people: the curation report (`curation_report.py`) and the run
summary (`build_summary.py`).
"""
