"""Preference pairs whose two sides differ on the axis that matters: the strategies
(`preference_pairs.py`), rule-made rejections (`axis_rejections.py`) and the pair report
(`pair_report.py`).
"""
