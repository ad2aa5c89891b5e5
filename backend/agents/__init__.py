"""Agent graphs (router, ReAct, Plan-Execute) and AgentService, which runs one conversation turn as typed events."""
