"""The phases of the diagnostic plan, one module each: `async def run(ctx: PhaseContext) -> None`."""
