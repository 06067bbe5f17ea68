-- Conversions in scope -> the clicks (click-through) or, with no click, the impressions
-- (view-through) of the same user and campaign that preceded them within the windows.
-- last_touch keeps the latest touch, first_touch the earliest, linear every touch with equal
-- weight; ties in time go to the greater event_id (last) or the smaller (first).
CREATE OR REPLACE TEMP TABLE _conv_attr AS
WITH v AS (
  SELECT event_id, event_time, user_id, campaign_id, event_type
  FROM clicks_conversions
  WHERE event_type <> 'click' AND _in_scope(event_time)
), ct AS (
  SELECT v.event_id AS conversion_id, 'click' AS touch, k.event_id AS touch_id,
         k.event_time AS touch_time
  FROM v JOIN clicks_conversions k
    ON k.user_id = v.user_id AND k.campaign_id = v.campaign_id AND k.event_type = 'click'
   AND k.event_time BETWEEN v.event_time - to_seconds($click_through_s) AND v.event_time
), vt AS (
  SELECT v.event_id AS conversion_id, 'view' AS touch, i.event_id AS touch_id,
         i.event_time AS touch_time
  FROM v JOIN _imp_of_users i
    ON i.user_id = v.user_id AND i.campaign_id = v.campaign_id
   AND i.event_time BETWEEN v.event_time - to_seconds($view_through_s) AND v.event_time
  WHERE v.event_id NOT IN (SELECT conversion_id FROM ct)
), ranked AS (
  SELECT *,
         row_number() OVER (PARTITION BY conversion_id ORDER BY touch_time DESC, touch_id DESC)
           AS from_last,
         row_number() OVER (PARTITION BY conversion_id ORDER BY touch_time, touch_id) AS from_first,
         count(*) OVER (PARTITION BY conversion_id) AS touches
  FROM (SELECT * FROM ct UNION ALL SELECT * FROM vt)
)
SELECT v.event_id AS conversion_id, v.event_time AS conversion_time,
       v.event_type AS conversion_type, $model AS model, r.touch, r.touch_id, r.touch_time,
       CASE WHEN $model = 'linear' THEN 1.0 / coalesce(r.touches, 1) ELSE 1.0 END AS weight,
       epoch(v.event_time) - epoch(r.touch_time) AS lag_seconds,
       coalesce(r.from_last = 1 AND $model <> 'first_touch' OR r.from_first = 1
                AND $model = 'first_touch', true) AS primary_touch
FROM v LEFT JOIN ranked r
  ON r.conversion_id = v.event_id
 AND ($model = 'linear' OR r.from_last = 1 AND $model = 'last_touch'
      OR r.from_first = 1 AND $model = 'first_touch')
