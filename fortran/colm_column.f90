! One column through many time steps: composes the process modules in CoLM's order
! (docs/core-contract.md) and keeps the water and energy books of every step.
module colm_column
  use colm_const
  use colm_layout
  use colm_grid, only: count_snow_layers, snow_geometry
  use colm_snow, only: rain_snow_partition, new_snow, snow_water, snow_compaction, snow_combine, &
                       snow_divide, snow_cover_fraction, snow_age_update
  use colm_soiltemp, only: soilsnow_temperature, column_heat_content
  use colm_soilwater, only: soil_water
  use colm_canopy, only: canopy_interception, surface_fluxes, update_ground_fluxes, surface_flux_t, &
                         effective_lai_sai, soil_evap_params, wet_fraction
  use colm_radiation, only: surface_radiation, surface_rad_t
  use colm_hydraulics, only: hyd_layer_t, hyd_layer, layer_state_psi
  implicit none
  private
  public :: column_run, column_step

contains

  subroutine column_run(nsteps, nper, nout, dt, hydr_model, dz_soil, forc, soilpar, vegpar, colpar, &
                        t_soisno, wliq_soisno, wice_soisno, dz_snow, cstate, diag, diag_soil, ierr)
    integer(ik), intent(in) :: nsteps                        ! number of steps (-)
    integer(ik), intent(in) :: nper                          ! steps per output block (-)
    integer(ik), intent(in) :: nout                          ! output blocks (-)
    real(r8), intent(in) :: dt                               ! time step (s)
    integer(ik), intent(in) :: hydr_model                    ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: dz_soil(nl_soil)                 ! soil layer thickness (m)
    real(r8), intent(in) :: forc(NF, nsteps)                 ! forcing, F_* (mixed)
    real(r8), intent(in) :: soilpar(NSP, nl_soil)            ! soil parameters, SP_* (mixed)
    real(r8), intent(in) :: vegpar(NVP)                      ! PFT parameters, VP_* (mixed)
    real(r8), intent(in) :: colpar(NCP)                      ! column parameters, CP_* (mixed)
    real(r8), intent(inout) :: t_soisno(nlev)                ! temperature (K)
    real(r8), intent(inout) :: wliq_soisno(nlev)             ! liquid water (kg m-2)
    real(r8), intent(inout) :: wice_soisno(nlev)             ! ice (kg m-2)
    real(r8), intent(inout) :: dz_snow(nsnow_max)            ! snow layer thickness (m)
    real(r8), intent(inout) :: cstate(NCS)                   ! column scalars, CS_* (mixed)
    real(r8), intent(out) :: diag(ND, nout)                  ! block-mean diagnostics, D_* (mixed)
    real(r8), intent(out) :: diag_soil(NDS, nl_soil, nout)   ! block-mean soil diagnostics, DS_* (mixed)
    integer(ik), intent(out) :: ierr                         ! 0, or the first failing step (-)

    real(r8) :: t(maxsnl+1:nl_soil)       ! temperature (K)
    real(r8) :: wliq(maxsnl+1:nl_soil)    ! liquid water (kg m-2)
    real(r8) :: wice(maxsnl+1:nl_soil)    ! ice (kg m-2)
    real(r8) :: dz(maxsnl+1:nl_soil)      ! layer thickness (m)
    real(r8) :: dg(ND)                    ! one step's diagnostics (mixed)
    real(r8) :: dgs(NDS, nl_soil)         ! one step's soil diagnostics (mixed)
    type(hyd_layer_t) :: hl0(nl_soil)     ! hydraulic constants of the ice-free soil layers (mixed)
    real(r8) :: thmin0(nl_soil)           ! their liquid content at smpmin (m3 m-3)
    real(r8) :: evp(2)                    ! soil-evaporation constants of layer 1, air-dry content and tortuosity (-)
    real(r8) :: scr(3)                    ! unused outputs (mixed)
    integer :: istep, iout, snl, step_err, j

    ! per-column constants, the same in every step: the hydraulic functions of the layers without ice (the
    ! step rebuilds them only for layers that hold ice) and the soil-resistance constants of layer 1
    do j = 1, nl_soil
      hl0(j) = hyd_layer(hydr_model, soilpar(:, j), 0.0_r8)
      call layer_state_psi(hl0(j), smpmin, thmin0(j), scr(1), scr(2), scr(3))
    end do
    call soil_evap_params(soilpar(:, 1), hydr_model, evp(1), evp(2))
    t = t_soisno
    wliq = wliq_soisno
    wice = wice_soisno
    dz(maxsnl+1:0) = dz_snow
    dz(1:nl_soil) = dz_soil
    snl = count_snow_layers(dz(maxsnl+1:0))
    diag = 0.0_r8
    diag_soil = 0.0_r8
    ierr = 0
    do istep = 1, nsteps
      call column_step(dt, hydr_model, dz_soil, forc(:, istep), soilpar, vegpar, colpar, snl, t, wliq, wice, &
                       dz, cstate, dg, dgs, step_err, hl0, thmin0, evp)
      if (step_err /= 0 .and. ierr == 0) ierr = istep
      iout = (istep - 1) / nper + 1
      diag(:, iout) = diag(:, iout) + dg
      diag_soil(:, :, iout) = diag_soil(:, :, iout) + dgs
    end do
    diag = diag / real(nper, r8)
    diag_soil = diag_soil / real(nper, r8)
    t_soisno = t
    wliq_soisno = wliq
    wice_soisno = wice
    dz_snow = dz(maxsnl+1:0)
  end subroutine column_run

  ! One time step of one column (process order in docs/core-contract.md).
  subroutine column_step(dt, hydr_model, dz_soil, forc, soilpar, vegpar, colpar, snl, t, wliq, wice, dz, &
                         cs, dg, dgs, ierr, hl0, thmin0, evp)
    real(r8), intent(in) :: dt                                ! time step (s)
    integer(ik), intent(in) :: hydr_model                     ! 1 Campbell, 2 van Genuchten-Mualem (-)
    real(r8), intent(in) :: dz_soil(nl_soil)                  ! soil layer thickness (m)
    real(r8), intent(in) :: forc(NF)                          ! forcing of this step, F_* (mixed)
    real(r8), intent(in) :: soilpar(NSP, nl_soil)             ! soil parameters, SP_* (mixed)
    real(r8), intent(in) :: vegpar(NVP)                       ! PFT parameters, VP_* (mixed)
    real(r8), intent(in) :: colpar(NCP)                       ! column parameters, CP_* (mixed)
    integer(ik), intent(inout) :: snl                         ! minus the number of snow layers (-)
    real(r8), intent(inout) :: t(maxsnl+1:nl_soil)            ! temperature (K)
    real(r8), intent(inout) :: wliq(maxsnl+1:nl_soil)         ! liquid water (kg m-2)
    real(r8), intent(inout) :: wice(maxsnl+1:nl_soil)         ! ice (kg m-2)
    real(r8), intent(inout) :: dz(maxsnl+1:nl_soil)           ! layer thickness (m)
    real(r8), intent(inout) :: cs(NCS)                        ! column scalars, CS_* (mixed)
    real(r8), intent(out) :: dg(ND)                           ! diagnostics of this step, D_* (mixed)
    real(r8), intent(out) :: dgs(NDS, nl_soil)                ! soil diagnostics of this step, DS_* (mixed)
    integer(ik), intent(out) :: ierr                          ! 0 ok, else a process failed (-)
    type(hyd_layer_t), intent(in), optional :: hl0(nl_soil)   ! hyd_layer of the ice-free soil layers (mixed)
    real(r8), intent(in), optional :: thmin0(nl_soil)         ! their liquid content at smpmin (m3 m-3)
    real(r8), intent(in), optional :: evp(2)                  ! soil_evap_params of soil layer 1 (-)

    real(r8) :: z(maxsnl+1:nl_soil)            ! node depth (m)
    real(r8) :: zi(maxsnl:nl_soil)             ! interface depth (m)
    real(r8) :: fiold(maxsnl+1:nl_soil)        ! ice fraction of layer water before phase change (-)
    integer(ik) :: imelt(maxsnl+1:nl_soil)     ! phase change flags (-)
    type(surface_rad_t) :: rad                 ! shortwave results
    type(surface_flux_t) :: sf                 ! surface fluxes
    real(r8) :: w_before, w_after              ! column water storage (kg m-2)
    real(r8) :: rain, snow                     ! rain and snowfall above the canopy (kg m-2 s-1)
    real(r8) :: rain_g, snow_g                 ! rain and snow reaching the ground (kg m-2 s-1)
    real(r8) :: heat_new_snow, dheat_snow      ! enthalpy changes by snowfall and snow water (J m-2)
    real(r8) :: fsno, fveg_buried              ! snow cover fraction, buried vegetation fraction (-)
    real(r8) :: elai, esai                     ! leaf and stem area exposed above the snow (m2 m-2)
    real(r8) :: fcansno                        ! fraction of the canopy covered by intercepted snow (-)
    real(r8) :: vp(NVP)                        ! PFT parameters with the crop height of this step (mixed)
    real(r8) :: fh                             ! crop height / maximum height (-)
    real(r8) :: theta1                         ! volumetric water of soil layer 1 (m3 m-3)
    real(r8) :: gflux, xmf, qmelt_nolayer      ! heat flux applied (W m-2), phase-change energy (W m-2), melt (kg m-2 s-1)
    real(r8) :: heat_resid                     ! snow/soil heat balance residual (W m-2)
    real(r8) :: dT_top                         ! top-layer temperature change in the diffusion solve (K)
    real(r8) :: avail_ground                   ! water ground evaporation may take this step (kg m-2)
    real(r8) :: qvap_snow, qvap_left          ! vapour flux from snow, part the snow could not supply (kg m-2 s-1)
    real(r8) :: qout_snow                      ! liquid leaving the snowpack bottom (kg m-2 s-1)
    real(r8) :: qgtop, qseva                   ! water reaching the soil, soil evaporation (kg m-2 s-1)
    real(r8) :: qsurf, qsub, qinfl, qcharge    ! runoff, baseflow, infiltration, recharge (kg m-2 s-1)
    real(r8) :: wl_to_soil, wi_to_soil         ! snow water moved into soil layer 1 when the pack vanishes (kg m-2)
    real(r8) :: scv_before, ldew_before        ! snow and canopy water at the start of the step (kg m-2)
    real(r8) :: snowmelt                       ! net melt of snow in the phase change (kg m-2 s-1)
    real(r8) :: ice_snow_before                ! ice in the snow layers before phase change (kg m-2)
    real(r8) :: p_in, e_out                    ! precipitation in, evapotranspiration out (kg m-2 s-1)
    real(r8) :: wliq_sf(nl_soil), wice_sf(nl_soil) ! soil water seen by surface_fluxes (kg m-2)
    integer(ik) :: ierr_heat, ierr_water
    integer :: j

    ierr = 0
    dg = 0.0_r8
    ! crops grow to their height with LAI (CLM5 VegStructUpdate): htop = ztopmx min(LAI/(laimx - 1), 1)^2, at least
    ! 0.05 m; roughness length and displacement height keep their ratios to htop
    vp = vegpar
    if (vegpar(VP_LAIMX) > 1.0_r8 .and. vegpar(VP_HTOP) > 0.0_r8) then
      fh = min(colpar(CP_LAI) / (vegpar(VP_LAIMX) - 1.0_r8), 1.0_r8)**2
      fh = max(fh, 0.05_r8 / vegpar(VP_HTOP))
      vp(VP_HTOP) = vegpar(VP_HTOP) * fh
      vp(VP_Z0M) = vegpar(VP_Z0M) * fh
      vp(VP_DISPLA) = vegpar(VP_DISPLA) * fh
    end if
    call snow_geometry(snl, dz_soil, dz, z, zi)
    w_before = column_water(snl, wliq, wice, cs)
    scv_before = cs(CS_SCV)
    ldew_before = cs(CS_LDEW)

    ! ---- precipitation, interception, new snow ----
    call rain_snow_partition(forc(F_TAIR), forc(F_PREC), rain, snow)
    call canopy_interception(dt, colpar(CP_LAI), colpar(CP_SAI), vp(VP_ISVEG), rain, snow, cs(CS_LDEW), &
                             rain_g, snow_g)
    call new_snow(dt, forc(F_TAIR), snow_g, soilpar, snl, dz, z, zi, t, wliq, wice, cs(CS_SCV), cs(CS_SNOWDP), &
                  heat_new_snow)
    call snow_cover_fraction(cs(CS_SNOWDP), cs(CS_SCV), colpar(CP_LAI), colpar(CP_SAI), vp(VP_Z0M), fsno, &
                             fveg_buried)
    call effective_lai_sai(vp(VP_HTOP), cs(CS_SNOWDP), colpar(CP_LAI), colpar(CP_SAI), elai, esai)

    ! ---- radiation and surface fluxes at the old top-layer temperature ----
    theta1 = (wliq(1) / denh2o + wice(1) / denice) / dz(1)
    ! intercepted water on a frozen canopy is snow and scatters like snow (CLM4.5 sect. 3.1)
    fcansno = 0.0_r8
    if (cs(CS_TLEAF) <= tfrz) fcansno = wet_fraction(cs(CS_LDEW), elai, esai)
    call surface_radiation(forc(F_COSZEN), forc(F_SWDOWN), vp, elai, esai, colpar, theta1, fsno, &
                           cs(CS_SNOWAGE), rad, fcansno=fcansno)
    call surface_fluxes(forc(F_TAIR), forc(F_QAIR), forc(F_PSURF), forc(F_WIND), forc(F_LWDOWN), colpar(CP_ZREF), &
                        vp, elai, esai, rad, snl, fsno, t, wliq, wice, dz, soilpar, hydr_model, cs(CS_LDEW), &
                        dt, cs(CS_TLEAF), sf, hl0=hl0, evp=evp)

    wliq_sf = wliq(1:nl_soil)
    wice_sf = wice(1:nl_soil)

    ! ---- snow and soil temperature with phase change ----
    fiold = 0.0_r8
    do j = snl + 1, 0
      fiold(j) = wice(j) / max(wice(j) + wliq(j), tiny(1.0_r8))
    end do
    ice_snow_before = sum(wice(snl+1:0))
    call soilsnow_temperature(hydr_model, snl, dt, soilpar, dz, z, zi, t, wliq, wice, cs(CS_SCV), cs(CS_SNOWDP), &
                              sf%hflx0, sf%dhflx_dt, gflux, xmf, qmelt_nolayer, imelt, heat_resid, ierr_heat, &
                              hl0=hl0)
    if (ierr_heat /= 0) ierr = 10 + ierr_heat
    snowmelt = qmelt_nolayer + (ice_snow_before - sum(wice(snl+1:0))) / dt
    dT_top = 0.0_r8
    if (sf%dhflx_dt < 0.0_r8) dT_top = (gflux - sf%hflx0) / sf%dhflx_dt

    ! ---- final surface fluxes, limited by the water available ----
    if (snl < 0) then
      avail_ground = wliq(snl+1) + wice(snl+1) + max(wliq(1) + cs(CS_WDSRF), 0.0_r8)
    else
      avail_ground = cs(CS_SCV) + max(wliq(1) + cs(CS_WDSRF), 0.0_r8)
    end if
    call update_ground_fluxes(dT_top, avail_ground, cs(CS_LDEW), dt, sf)
    cs(CS_LDEW) = max(cs(CS_LDEW) - sf%fevpl * dt, 0.0_r8)

    ! ---- water through the snow, then the soil ----
    qvap_snow = sf%fevpg_snow
    qseva = sf%fevpg_soil
    qout_snow = 0.0_r8
    dheat_snow = 0.0_r8
    ! snow layers take rain and vapour exchange; snow without layers only vapour (rain passes through)
    call snow_water(dt, snl, dz, t, wliq, wice, cs(CS_SCV), cs(CS_SNOWDP), rain_g, qvap_snow, qout_snow, &
                    qvap_left, dheat_snow)
    qseva = qseva + qvap_left
    qgtop = qout_snow
    qgtop = qgtop + qmelt_nolayer
    ! the matric potentials soil_water_stress computed stay valid for the layers whose water did not change
    ! since (no phase change, no snow water): the solver starts from them instead of recomputing them
    do j = 1, nl_soil
      if (wliq(j) /= wliq_sf(j) .or. wice(j) /= 0.0_r8 .or. wice_sf(j) /= 0.0_r8) then
        sf%smp_root(j) = 1.0_r8
        sf%seeded_root(j) = .false.
      end if
    end do
    call soil_water(hydr_model, dt, soilpar, dz(1:nl_soil), z(1:nl_soil), zi(0:nl_soil), t(1:nl_soil), &
                    wliq(1:nl_soil), wice(1:nl_soil), qgtop, qseva, sf%etr, sf%rootr, cs(CS_WDSRF), cs(CS_ZWT), &
                    cs(CS_WA), qsurf, qsub, qinfl, qcharge, ierr_water, hl0=hl0, thmin0=thmin0, &
                    h_start=sf%smp_root, state_start=sf%state_root, seeded_start=sf%seeded_root)
    if (ierr_water > 1 .and. ierr == 0) ierr = 20 + ierr_water

    ! ---- snow layers: compaction, combination, division ----
    if (snl < 0) then
      call snow_compaction(dt, snl, imelt, fiold, t, wliq, wice, dz, z, zi, cs(CS_SNOWDP))
      call snow_combine(soilpar, snl, dz, z, zi, t, wliq, wice, cs(CS_SCV), cs(CS_SNOWDP), wl_to_soil, wi_to_soil)
      call snow_divide(snl, dz, z, zi, t, wliq, wice)
    end if
    call snow_age_update(dt, t(snl+1), snow_g, cs(CS_SCV), cs(CS_SNOWAGE))
    call snow_cover_fraction(cs(CS_SNOWDP), cs(CS_SCV), colpar(CP_LAI), colpar(CP_SAI), vp(VP_Z0M), fsno, &
                             fveg_buried)
    cs(CS_TGRND) = t(snl+1)

    ! ---- books ----
    w_after = column_water(snl, wliq, wice, cs)
    p_in = forc(F_PREC)
    e_out = sf%fevpl + sf%etr + sf%fevpg
    dg(D_SWNET) = sf%swnet
    dg(D_LWNET) = sf%lwnet
    dg(D_QLE) = sf%qle
    dg(D_QH) = sf%qh
    dg(D_QG) = sf%g
    dg(D_EVAP) = e_out
    dg(D_TVEG) = sf%etr
    dg(D_ESOIL) = sf%fevpg_soil
    dg(D_ECANOP) = sf%fevpl
    dg(D_SUBSNOW) = sf%fevpg_snow
    dg(D_QS) = qsurf
    dg(D_QSB) = qsub
    dg(D_RAINF) = rain
    dg(D_SNOWF) = snow
    dg(D_SWE) = cs(CS_SCV)
    dg(D_SNOWDEPTH) = cs(CS_SNOWDP)
    dg(D_SNOWFRAC) = fsno
    dg(D_AVGSURFT) = t(snl+1)
    dg(D_RADT) = sf%trad
    dg(D_ALBEDO) = rad%albedo
    dg(D_CANOPINT) = cs(CS_LDEW)
    dg(D_ZWT) = cs(CS_ZWT)
    dg(D_WA) = cs(CS_WA)
    dg(D_POND) = cs(CS_WDSRF)
    dg(D_TWS) = w_after
    dg(D_GPP) = sf%gpp
    dg(D_VEGT) = cs(CS_TLEAF)
    dg(D_WBAL_ERR) = (w_after - w_before) / dt - (p_in - e_out - qsurf - qsub)
    dg(D_EBAL_ERR) = sf%ebal_err
    dg(D_SOILH_ERR) = heat_resid
    dg(D_LEAF_RES) = sf%leaf_res_conv
    dg(D_HEATC) = column_heat_content(snl, soilpar, dz, t, wliq, wice, cs(CS_SCV))
    dg(D_BTRAN) = sf%btran
    dg(D_QSM) = snowmelt
    do j = 1, nl_soil
      dgs(DS_SOILMOIST, j) = wliq(j) + wice(j)
      dgs(DS_SOILTEMP, j) = t(j)
      dgs(DS_SOILICE, j) = wice(j)
    end do
  end subroutine column_step

  ! Water stored in the column (kg m-2): soil liquid and ice, snow, canopy, ponding, aquifer.
  pure real(r8) function column_water(snl, wliq, wice, cs) result(w)
    integer(ik), intent(in) :: snl                      ! minus the number of snow layers (-)
    real(r8), intent(in) :: wliq(maxsnl+1:nl_soil)      ! liquid water (kg m-2)
    real(r8), intent(in) :: wice(maxsnl+1:nl_soil)      ! ice (kg m-2)
    real(r8), intent(in) :: cs(NCS)                     ! column scalars (mixed)
    ! snow layers are inside scv, which colm_snow keeps equal to their sum (checked by tests/test_snow.py)
    w = sum(wliq(1:nl_soil)) + sum(wice(1:nl_soil)) + cs(CS_SCV) + cs(CS_LDEW) + cs(CS_WDSRF) + cs(CS_WA)
  end function column_water
end module colm_column
