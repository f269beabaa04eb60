"""The course's machinery, apart from its ideas: the device, quick mode, seeding, the environment
check, the exercise generator and the full-mode notebook runner.

`utils.setup()` (in utils/__init__.py) uses the first three; notebooks rarely need the rest.
"""
