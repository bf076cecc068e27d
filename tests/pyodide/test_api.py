"""The API on the Worker under Pyodide, specified once: these are the local runtime's own
tests (tests/edge_worker), collected here a second time with this folder's `client`, the
Worker over HTTP on real local D1, R2 and Queue bindings. Presigned URLs reach the local
bucket through R2Gateway, which checks their SigV4 signatures as R2 does, so the agent
protocol runs with real grants: claim, input downloads, progress, result upload, complete.

Left out are the tests that reach into the local runtime (its store, clock, blob folder or
queue emulator) or send what no HTTP client can (a header with a newline);
tests/pyodide/test_worker.py covers the Worker's own paths: body guard, queue, cron.
"""

# ruff: noqa: F401 (importing the tests is what collects them here)

from tests.edge_worker.test_agent_api import (
    test_a_job_is_claimed_once,
    test_agent_routes_refuse_client_keys_and_no_token,
    test_complete_needs_the_uploaded_object,
    test_full_protocol_happy_path,
    test_lost_replies_are_safe_to_retry,
    test_malformed_agent_bodies_are_invalid_input,
    test_missing_upload_is_a_retryable_storage_error,
    test_non_retryable_failure_is_shown_to_the_owner,
    test_protocol_calls_for_unknown_jobs_are_404,
    test_stale_claim_token_is_fenced,
    test_the_claim_hands_the_agent_the_jobs_quality,
)
from tests.edge_worker.test_cancel_and_maintenance import (
    test_cancel_a_pending_job,
    test_cancel_a_processing_job_tells_the_agent_and_publishes_nothing,
    test_cancel_refuses_finished_jobs_and_other_keys,
)
from tests.edge_worker.test_event_stream import (
    test_a_finished_job_gets_its_one_event_and_the_stream_closes,
    test_prefer_wait_answers_after_n_seconds_without_a_change,
    test_the_stream_is_authenticated_and_404s_like_status,
)
from tests.edge_worker.test_idempotency import (
    test_invalid_key_is_400,
    test_keys_are_per_api_key,
    test_quality_is_part_of_the_request,
    test_same_key_different_request_is_422,
    test_same_key_same_request_returns_the_same_job,
)
from tests.edge_worker.test_playground import (
    test_an_unknown_file_is_not_found_in_the_error_envelope,
    test_scripts_and_styles_are_this_origins_and_nothing_inline,
    test_the_page_and_its_files_come_from_this_origin_only,
    test_the_policy_lets_the_page_reach_the_blob_store_and_no_other,
    test_the_root_points_browsers_at_the_playground,
)
from tests.edge_worker.test_public_api import (
    test_a_bad_quality_names_the_field_and_the_choices,
    test_another_keys_job_is_not_found,
    test_bad_inputs_get_clear_codes,
    test_duplicate_field_is_refused,
    test_generate_accepts_jpeg_and_mp3_by_content,
    test_generate_returns_a_pending_job_with_queue_position,
    test_health_and_openapi_need_no_key,
    test_json_body_is_not_a_form,
    test_list_jobs_newest_first_with_cursor,
    test_malformed_multipart_is_invalid_input,
    test_missing_file_is_invalid_input,
    test_no_or_wrong_key_is_401_everywhere,
    test_quality_is_standard_unless_fast_is_asked_for,
    test_unknown_job_and_unready_result,
    test_unknown_route_and_wrong_method_use_the_envelope,
)
from tests.edge_worker.test_uploads import (
    test_an_upload_feeds_one_job_only,
    test_bad_declarations_are_refused,
    test_grant_describes_the_upload,
    test_json_generate_honours_idempotency_keys,
    test_json_generate_takes_a_quality,
    test_malformed_json_generate,
    test_missing_upload_is_invalid_input,
    test_oversized_json_generate,
    test_uploaded_files_become_a_job_the_agent_can_read,
    test_uploaded_objects_are_judged_by_their_bytes,
    test_uploads_need_a_key,
)
from tests.edge_worker.test_usage import (
    test_a_year_and_a_leap_day_is_the_longest_period,
    test_bad_periods_are_invalid_input,
    test_usage_buckets_the_callers_jobs_by_day_and_quality,
    test_usage_needs_an_api_key,
)
