"""Asking teachers (and the base student) for answers to prompts, over `datagen.serving`.
"""
