"""The LLM judge: its prompts and the gold guard (`judge_prompts.py`), scores and pairwise
verdicts with the position swap and bias checks (`judge_answers.py`), and judge-ranked
pairs (`judge_pairs.py`). It never sees a gold row.
"""
