from langgraph_rlm.cli import main

main(prog_name="rlm")
