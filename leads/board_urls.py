"""The pipeline boards: one URL per board (htmx gets its fragments) and one
move URL per record."""

from django.urls import path

from leads import board_views

app_name = "boards"

urlpatterns = [
    path("", board_views.handoff_board, name="handoff"),
    path("deals/", board_views.deal_board, name="deals"),
    path("leads/<int:pk>/move/", board_views.lead_move, name="lead_move"),
    path("deals/<int:pk>/move/", board_views.deal_move, name="deal_move"),
]
