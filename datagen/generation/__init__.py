"""Where prompts come from: the task's labelled templates (`labelled_prompts.py`,
`template_generator.py`), self-generation (`self_instruct.py`) and the user's own files
(`imports.py` over `import_layouts.py`).
"""
