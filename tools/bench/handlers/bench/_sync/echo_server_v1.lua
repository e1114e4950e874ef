-- bench/echo v1: the trivial handler of the benchmark (tools/bench). It returns its input as
-- serverOutput, so the fanout frame carries the generator's send time back to every member.
-- No input schema and no client file: the request takes the server's shortest path.
return {
  main = function(ctx)
    return { status = "success", serverOutput = ctx.data }
  end,
}
