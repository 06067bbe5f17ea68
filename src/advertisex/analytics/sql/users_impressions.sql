-- The impressions of the users with clicks or conversions in scope: all that the lookback and
-- view-through joins can reach (the clicks a conversion touches are its user's), so that the
-- impressions are probed by user once rather than once per join.
CREATE OR REPLACE TEMP TABLE _imp_of_users AS
SELECT event_id, event_time, user_id, creative_id, campaign_id
FROM _imp
WHERE user_id IN (SELECT user_id FROM clicks_conversions WHERE _in_scope(event_time))
