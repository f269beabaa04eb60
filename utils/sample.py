"""Write text with a trained GPT from the command line (the code: utils/course/cli.py).

    python -m utils.sample --checkpoint runs/cpu-quick --prompt "ROMEO:" [--tokens 300]
        [--temperature 0.8] [--top-k 50] [--top-p 0.95] [--seed 0] [--device cpu] [--no-cache]
"""

if __name__ == "__main__":
    from .course.cli import sample_main

    sample_main()
