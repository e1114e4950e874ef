-- Helpers shared by the board handlers (loaded with require("board") from the lua/ folder).
local M = {}

local LANES = { todo = true, doing = true, done = true }

function M.is_lane(lane)
  return LANES[lane] == true
end

function M.new_card(id, title, lane, tags)
  return { id = id, title = title, lane = lane, tags = tags }
end

return M
