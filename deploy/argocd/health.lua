-- Argo CD health check for dli.stop-operator.io/JobStopRequest.
--
--   Healthy      Ready=True for the current generation: every job is stopped (or, with
--                spec.confirm.enabled=false, DLI accepted the stop).
--   Degraded     Stalled=True for the current generation: DLI refused the stop, a job failed
--                to stop, or the outcome is unknown. A human has to look (and may change
--                spec.nonce to send the stop again).
--   Progressing  anything else: not picked up yet, submitting, confirming, or the conditions
--                describe an older generation than the one just applied.
--
-- Argo CD runs this with gopher-lua (Lua 5.1) and, unless the admin sets useOpenLibs, only the
-- base, table and package libraries: there is no string library (no string.format, no
-- ("..."):method() calls) and no global os. tostring and .. are all the formatting there is.
local hs = {}

local function find_condition(conditions, condition_type)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == condition_type then
      return condition
    end
  end
  return nil
end

-- A condition speaks about the current spec only when it was written for this generation.
-- Conditions without observedGeneration are taken as current.
local function is_current(condition, generation)
  return condition.observedGeneration == nil or generation == nil
    or condition.observedGeneration == generation
end

local function describe(condition, fallback)
  if condition == nil then
    return fallback
  end
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  if condition.reason ~= nil and condition.reason ~= "" then
    return condition.reason
  end
  return fallback
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local conditions = nil
if obj.status ~= nil then
  conditions = obj.status.conditions
end

local stalled = find_condition(conditions, "Stalled")
local ready = find_condition(conditions, "Ready")
local reconciling = find_condition(conditions, "Reconciling")

if stalled ~= nil and stalled.status == "True" and is_current(stalled, generation) then
  hs.status = "Degraded"
  hs.message = describe(stalled, "The stop needs attention")
  return hs
end

if ready ~= nil and ready.status == "True" and ready.observedGeneration ~= nil
    and ready.observedGeneration == generation then
  hs.status = "Healthy"
  hs.message = describe(ready, "The jobs are stopped")
  return hs
end

hs.status = "Progressing"
if conditions == nil then
  hs.message = "Waiting for the operator to pick up the request"
elseif (ready ~= nil and not is_current(ready, generation))
    or (stalled ~= nil and not is_current(stalled, generation)) then
  hs.message = "Waiting for the operator to process generation " .. tostring(generation)
elseif reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling, "Stopping the jobs")
else
  hs.message = describe(ready, "Stopping the jobs")
end
return hs
