"""The foundation every package builds on, and which imports nothing else of crucible: the
record types with their provenance (`records.py`), canonical hashing (`hashing.py`), the
run store (`run_store.py`), the task definition (`task.py`), the export layout
(`export_layout.py`), the one JSONL reader (`jsonl.py`) and the HTML report shell
(`report_html.py`).
"""
