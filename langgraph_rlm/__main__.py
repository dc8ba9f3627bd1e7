from langgraph_rlm.cli import main

main()
