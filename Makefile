# Short-hands; each runs the plain command shown beside it (see README).
.PHONY: start setup test exercises

start:      ## python3 course.py start
	python3 course.py start

setup:      ## python3 course.py setup
	python3 course.py setup

test:       ## python3 course.py test
	python3 course.py test

exercises:  ## regenerate the student copies from the solutions
	.venv/bin/python -m utils.course.make_exercises
