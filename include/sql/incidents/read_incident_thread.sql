-- The ticket and Slack thread of an incident in one rollout mode: its first delivery that
-- got a ticket (later events update that ticket and reply in that thread).
select
    ticket_id,
    slack_message_ts
from {{ tables.deliveries }}
where
    incident_id = @incident_id
    and rollout_mode = @rollout_mode
    and ticket_id is not null
order by delivered_at
limit 1
