-- name: CampaignInsert :exec
INSERT INTO campaigns (id, metric, starts_at, ends_at, currency, prizes, created_at)
VALUES (@id, @metric, @starts_at, @ends_at, @currency, @prizes, @created_at);

-- name: CampaignGet :one
SELECT id, metric, starts_at, ends_at, currency, prizes, created_at, status, awarded_at, standings
FROM campaigns
WHERE id = @id;

-- name: CampaignLock :one
SELECT id, metric, starts_at, ends_at, currency, prizes, created_at, status, awarded_at, standings
FROM campaigns
WHERE id = @id
FOR UPDATE;

-- name: CampaignList :many
SELECT id, metric, starts_at, ends_at, currency, prizes, created_at, status, awarded_at, standings
FROM campaigns
WHERE id > @after_id::text
ORDER BY id
LIMIT @max_rows;

-- name: CampaignSetAwarded :exec
UPDATE campaigns SET status = 'awarded', awarded_at = @now::timestamptz, standings = @standings
WHERE id = @id AND status = 'scheduled';

-- name: CampaignPrizeInsert :exec
INSERT INTO campaign_prizes (campaign_id, rank, member_id, currency, amount, figure, entry_id, release_at)
VALUES (@campaign_id, @rank, @member_id, @currency, @amount, @figure, @entry_id, @release_at);

-- name: CampaignPrizeList :many
SELECT campaign_id, rank, member_id, currency, amount, figure, entry_id, release_at, released_at, release_entry_id
FROM campaign_prizes
WHERE campaign_id = @campaign_id
ORDER BY rank;

-- name: CampaignPrizesLockUnreleased :many
SELECT campaign_id, rank, member_id, currency, amount, figure, entry_id, release_at, released_at, release_entry_id
FROM campaign_prizes
WHERE campaign_id = @campaign_id AND released_at IS NULL
ORDER BY rank
FOR UPDATE;

-- name: CampaignPrizeSetReleased :exec
UPDATE campaign_prizes SET released_at = @now::timestamptz, release_entry_id = @entry_id::bigint
WHERE campaign_id = @campaign_id AND rank = @rank AND released_at IS NULL;

-- name: CampaignPrizesHeldByMembers :many
-- CampaignPrizesHeldByMembers sums the prizes still held, per member and currency (the checker adds
-- them to what members' unreleased rebate lots hold).
SELECT member_id, currency, sum(amount)::numeric AS held
FROM campaign_prizes
WHERE member_id = ANY(@member_ids::text[]) AND released_at IS NULL
GROUP BY member_id, currency;
