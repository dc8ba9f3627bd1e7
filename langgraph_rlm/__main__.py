from langgraph_rlm import collector


def rlm() -> None:
    """The `rlm` command as a process of its own (tests call `cli.main` in theirs)."""
    collector.importing()
    try:
        from langgraph_rlm.cli import main

        main(prog_name="rlm")
    finally:
        collector.exiting()


if __name__ == "__main__":
    rlm()
